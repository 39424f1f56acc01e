"""The shared store and everything that fills it: schema, migrations, demo data, importers, boundaries."""
