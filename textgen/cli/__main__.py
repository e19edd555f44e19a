from textgen.cli.main import main

main()
