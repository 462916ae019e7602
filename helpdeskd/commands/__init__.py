"""What each command of `helpdeskd` does, one module per group of commands; `cli` imports only
the module of the command it runs. (An engineer's `#` lines in a reply are core/commands.py.)"""
