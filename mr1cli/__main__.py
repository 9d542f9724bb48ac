from mr1cli.cli import main

main()
