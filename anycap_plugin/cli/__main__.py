from .app import main

if __name__ == "__main__":  # `python -m anycap_plugin.cli`, as `python -m anycap_plugin`
    main()
