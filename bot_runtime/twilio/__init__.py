"""Twilio: the media stream and its serializer, the REST API, stream authorisation."""
