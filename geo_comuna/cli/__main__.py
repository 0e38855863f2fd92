from geo_comuna.cli import main

main()
