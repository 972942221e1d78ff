import sys

if __name__ == "__main__":
    print("corpus: configuration file /workspace/app.toml not found", file=sys.stderr)
    sys.exit(3)
