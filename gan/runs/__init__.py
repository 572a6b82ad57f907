"""A run folder: the name of every file in it (``layout``), the rules and lock that keep one run from damaging
another (``folder``) and checkpoints read as plain data and written atomically (``checkpoints``)."""
