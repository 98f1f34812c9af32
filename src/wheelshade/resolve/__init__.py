"""Obtaining dependency wheels and resolving their closure (pip is the resolver and fetcher)."""
