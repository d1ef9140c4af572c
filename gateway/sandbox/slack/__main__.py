"""`python -m gateway.sandbox.slack --port 8082 [--gateway URL]`: the sandbox, standalone.

Example:
    $ python -m gateway.sandbox.slack --gateway http://127.0.0.1:8000/slack/events
"""

from gateway.sandbox.slack.cli import main

if __name__ == "__main__":
    main()
