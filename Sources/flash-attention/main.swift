// Placeholder entry point; the CLI issue replaces it with the ArgumentParser command tree.
print("flash-attention")
