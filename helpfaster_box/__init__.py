"""HelpFaster Box: a self-hosted appliance serving the HelpFaster REST API."""

import os

__version__ = "0.1.0"

# llama.cpp's OpenMP threads spin while they wait by default. Here the chat engine and
# the embedder share two cores, and spinning threads starve each other (measured 2-10x
# slower under load). Set before anything loads llama.cpp; an operator's value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
