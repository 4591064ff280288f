"""`python -m token_server`: run the control plane with settings from the environment."""

from __future__ import annotations

from aiohttp import web

from token_server.app import create_app
from token_server.logs import configure_logging
from token_server.settings import TokenServerSettings


def main() -> None:
    settings = TokenServerSettings.from_env()
    configure_logging(settings.log_level)
    web.run_app(create_app(settings), host=settings.host, port=settings.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
