"""The dtim command line.

Command modules import the service layer inside their functions, so that
``dtim --help`` and simple commands start in a fraction of a second.
"""
