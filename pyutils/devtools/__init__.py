"""Development tools (demo sample, local test server, local Dask cluster); nothing at runtime
imports them."""
