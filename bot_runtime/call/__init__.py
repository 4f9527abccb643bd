"""One phone call's life: its parts, its pipeline, opening, endings, transfer and record."""
