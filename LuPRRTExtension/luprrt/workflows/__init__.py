"""End-to-end runs over files on disk, shared by the ``luprrt`` command line and cohort batch."""
