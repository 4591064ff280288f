"""`python -m token_server`: run the control plane with settings from the environment."""

from __future__ import annotations

import sys

from aiohttp import web
from loguru import logger

from avatar_core.settings import load_settings
from token_server.app import create_app
from token_server.logs import configure_logging
from token_server.settings import LOOPBACK_HOSTS, TokenServerSettings

INSECURE_OVERRIDE = "AVATAR_ALLOW_INSECURE_PUBLIC=1"


def main() -> None:
    settings = TokenServerSettings.from_tree(load_settings())
    configure_logging(settings.log_level)
    problems = settings.exposure_problems()
    if problems and not settings.allow_insecure_public:
        sys.exit(
            f"token server: refusing to listen on {settings.host}, which other machines can reach, "
            "with "
            + "; ".join(problems)
            + ". Set AVATAR_API_KEY and your own LIVEKIT_API_KEY/SECRET "
            f"(see README 'Threat model'), or {INSECURE_OVERRIDE} to start anyway."
        )
    for problem in problems:
        logger.warning("INSECURE PUBLIC SERVER ({}): {}", INSECURE_OVERRIDE, problem)
    if settings.public_bind and set(settings.allowed_hosts) <= set(LOOPBACK_HOSTS):
        logger.warning(
            "listening on {} but AVATAR_ALLOWED_HOSTS names only loopback hosts: requests for "
            "other host names are refused",
            settings.host,
        )
    # keepalive_timeout also bounds how long a new connection may take to send its headers.
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=None,
        keepalive_timeout=settings.header_timeout_s,
    )


if __name__ == "__main__":
    main()
