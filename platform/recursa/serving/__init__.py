"""Ray Serve deployments of the exported models, their HTTP schemas and the app builders."""
