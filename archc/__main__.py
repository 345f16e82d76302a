from archc.cli import run

run()
