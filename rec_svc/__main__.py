from rec_svc.server import main

main()
