"""Data: reading and validating the files, label lists and mappings, splits, preprocessing, extension with leak control."""
