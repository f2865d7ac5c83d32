"""The web dashboard on the admin listener: pages, login and the admin API, all served locally."""

from dtim.web.app import create_admin_app

__all__ = ["create_admin_app"]
