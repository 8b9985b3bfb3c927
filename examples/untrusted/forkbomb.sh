#!/bin/sh
# The classic fork bomb, made of sh functions; the process limit stops it.
bomb() { bomb | bomb & }
bomb
sleep 5
