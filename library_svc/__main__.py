from library_svc.server import main

main()
