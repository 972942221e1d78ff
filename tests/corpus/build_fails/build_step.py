import sys

print("build step: generating assets")
print("build step: asset 'logo.svg' is missing", file=sys.stderr)
sys.exit(4)
