"""``make bench``: serving paths side by side on the same inputs (issue 4)."""
