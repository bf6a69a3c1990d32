"""The learn-to-write chain: tasks (`task.py`) and the one run of texts to scores (`chain.py`)."""
