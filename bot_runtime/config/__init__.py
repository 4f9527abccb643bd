"""Configuration: the environment, the agent file and Twilio's settings, read once."""
