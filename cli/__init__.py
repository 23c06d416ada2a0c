"""The `hctree` command line: thin click commands over the hctree library."""
