"""The command-line tools (a package only so that each entry can import
``tools._venv`` before anything else: see tools/_venv.py)."""
