"""Setting a project up for backout: ``backout init`` (what is there, what to write) and
``backout guard`` (committed migrations stay as they are).

May import migrations/, database/ (only to look for history tables) and git; never
operations/ or postmortems/.
"""
