"""``sandbox serve``: a local web app over run databases, live while runs write (see
:mod:`sandbox.serve.app`)."""
