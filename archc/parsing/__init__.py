"""The parser's parts (archc.parser runs them): lines, statements and layer binding."""
