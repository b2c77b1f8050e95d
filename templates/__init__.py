"""Jinja templates for the email and the web archive (shipped inside the package as ``digest.templates``)."""
