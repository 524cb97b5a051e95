from sandbox.cli.app import main

main()
