"""Serving a model: the HTTP server and batch prediction over files, folders and stdin."""
