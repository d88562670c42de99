from catalog_svc.server import main

main()
