ARG branch=latest
FROM cccs/assemblyline-v4-service-base:$branch

# Python path to the service class, read by the base image's entry point
ENV SERVICE_PATH=metadefender.MetaDefender

# Service dependencies beyond what the base image ships, installed for the assemblyline user
USER assemblyline
COPY requirements.txt requirements.txt
RUN pip install --no-cache-dir --user --requirement requirements.txt && rm -rf ~/.cache/pip

# The service code
WORKDIR /opt/al_service
COPY . .

# Stamp the image's version into the manifest
ARG version=4.0.0.dev1
USER root
RUN sed -i -e "s/\$SERVICE_TAG/$version/g" service_manifest.yml

USER assemblyline
