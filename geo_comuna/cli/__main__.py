from geo_comuna.cli import main

if __name__ == "__main__":  # not when a worker process of `serve` starts
    main()
