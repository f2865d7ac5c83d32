"""``dtim demo``: a throw-away mesh on 127.0.0.1 fed with generated attack logs."""
