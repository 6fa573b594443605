"""The sandbox's web layer: the Flask app, the API routes, the pages and controls."""
