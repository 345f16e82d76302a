"""archc's version, in a module of its own so that every stage may read it."""

__version__ = "0.1.0"
