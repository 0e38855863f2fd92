"""Generic feature services over the layer registry: validation, queries and writes."""
