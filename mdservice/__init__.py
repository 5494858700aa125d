"""The MetaDefender service's parts; `metadefender.MetaDefender` is the Assemblyline entry point."""
