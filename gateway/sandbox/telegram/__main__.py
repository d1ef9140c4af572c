"""`python -m gateway.sandbox.telegram --port 8081 [--token T]`: the sandbox, standalone.

Example:
    $ python -m gateway.sandbox.telegram --port 8081
"""

from gateway.sandbox.telegram.cli import main

if __name__ == "__main__":
    main()
