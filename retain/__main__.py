from retain.cli import app

# The usage lines say `retain ...`, as the installed command does, not `python -m retain`.
app(prog_name="retain")
