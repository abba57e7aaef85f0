"""The ledger server (`credits serve`): one process owns the ledger file and serves the
dashboard, an HTTP API (v1) and the background jobs; every other process is its client.

- serve.py: the process (st.App for the dashboard, a second uvicorn server for the API,
  shutdown on SIGTERM / Ctrl-C);
- api.py, routes.py, batch.py, bodies.py, views.py: API v1 on FastAPI;
- errors.py: each error's HTTP status and JSON, and back (for the client);
- keys.py: API keys and scopes; limits.py: body size and time limits;
- jobs.py: the background jobs;
- runfile.py: `<db>.server.json`, how the CLI finds a running server.
"""
