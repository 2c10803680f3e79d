"""The dataset catalogue: one record per dataset, layouts, `make check`."""
