"""``wheelshade serve``: a simple-repository index that shades configured projects on the fly."""
