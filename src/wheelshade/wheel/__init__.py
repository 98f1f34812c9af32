"""Reading and writing wheels: the archive, RECORD, METADATA, layout, staging; nothing else."""
