from opsd.cli import main

main()
