"""What every model server shares: the FastAPI side (JSON errors, body limit, API key), OpenAI's
request and response schemas, streamed chunks, offered tools, and the application builder that
checks a Serve config's args. Each product's server lives in its own folder."""
