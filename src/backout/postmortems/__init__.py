"""Postmortems: model, front matter, file, loader, filters, states, deadlines, checks, reports.
May import errors, templating, git, migrations.lint; never database/, operations/ or cli/."""
