"""Backends: the torch eager module, generated Python source, and weight transfer."""
